# What 08-data-parallel needs beyond nn2gpt_common (see the top CMakeLists.txt):
# Open MPI (Debian: libopenmpi-dev, openmpi-bin). Without it the other
# lessons still build.
find_package(MPI COMPONENTS CXX)
if(MPI_CXX_FOUND)
  list(APPEND lesson_libraries MPI::MPI_CXX)
else()
  set(lesson_missing "Open MPI not found (apt-get install libopenmpi-dev openmpi-bin)")
endif()
