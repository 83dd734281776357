# What the set-up and benchmark scripts share; sourced, not run:
#   source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# Sets `root` (the repository) and defines the functions below.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# nn2gpt_missing PACKAGE...: prints the Debian packages not installed yet.
nn2gpt_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# nn2gpt_install WHO PACKAGE...: installs the packages not installed yet with
# apt-get (through sudo unless root), saying so in one line that starts with
# WHO; quiet when nothing is missing. On failure it prints apt-get's output
# and exits with status 2.
nn2gpt_install() {
  local who="$1"; shift
  local missing sudo="" log
  mapfile -t missing < <(nn2gpt_missing "$@")
  ((${#missing[@]})) || return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "$who: installing ${missing[*]}"
  log="$(mktemp)"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "$who: error: apt-get could not install ${missing[*]}" >&2
    exit 2
  fi
  rm -f "$log"
}

# nn2gpt_summary FILE KEY: one number from the JSON line a lesson writes with
# --summary-json FILE (e.g. ms_per_step_median, peak_memory_mb, val_loss);
# "?" if the file or the key is missing. Needs jq (nn2gpt_install WHO jq).
nn2gpt_summary() {
  [ -f "$1" ] || { echo "?"; return 0; }
  jq -r --arg k "$2" '.[$k] // "?"' "$1"
}

# nn2gpt_machine: "N cores, CPU model", for the first line of a benchmark.
nn2gpt_machine() {
  echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
}

# nn2gpt_load: the load averages over 1, 5 and 15 minutes.
nn2gpt_load() { cut -d' ' -f1-3 /proc/loadavg; }
