#include "common/mnist.hpp"

#include <string>

#include "common/error.hpp"
#include "common/idx.hpp"

namespace nn {

namespace {

namespace fs = std::filesystem;

// DIR/mnist/NAME, or NAME.gz if only the compressed file is there.
fs::path find(const fs::path& data_dir, const std::string& name) {
    const fs::path plain = data_dir / "mnist" / name;
    if (fs::exists(plain)) return plain;
    const fs::path gz = plain.string() + ".gz";
    if (fs::exists(gz)) return gz;
    fail("{}: no such file (nor {}); fetch the data with scripts/fetch-data", plain.string(),
         gz.filename().string());
}

Dataset read_pair(const fs::path& data_dir, const std::string& prefix) {
    const fs::path images_path = find(data_dir, prefix + "-images-idx3-ubyte");
    const fs::path labels_path = find(data_dir, prefix + "-labels-idx1-ubyte");
    const IdxArray images = read_idx(images_path);
    const IdxArray labels = read_idx(labels_path);
    if (images.dims.size() != 3 || images.dims[1] != 28 || images.dims[2] != 28)
        fail("{}: expected images of 28x28 pixels", images_path.string());
    if (labels.dims.size() != 1)
        fail("{}: expected a one-dimensional array of labels", labels_path.string());
    if (images.dims[0] != labels.dims[0])
        fail("{} holds {} images but {} holds {} labels", images_path.string(), images.dims[0],
             labels_path.string(), labels.dims[0]);
    for (std::uint8_t label : labels.data)
        if (label > 9) fail("{}: label {} is not a digit", labels_path.string(), int(label));

    Dataset set;
    const Eigen::Index n = images.dims[0];
    set.images.resize(n, 784);
    const auto pixels = Eigen::Map<const Eigen::Array<std::uint8_t, Eigen::Dynamic, 1>>(
        images.data.data(), n * 784);
    Eigen::Map<Eigen::ArrayXf>(set.images.data(), n * 784) = pixels.cast<float>() / 255.0f;
    set.labels = labels.data;
    return set;
}

Dataset slice(const Dataset& set, Eigen::Index first, Eigen::Index count) {
    Dataset part;
    part.images = set.images.middleRows(first, count);
    part.labels.assign(set.labels.begin() + first, set.labels.begin() + first + count);
    return part;
}

}  // namespace

Mnist load_mnist(const fs::path& data_dir) {
    const Dataset train = read_pair(data_dir, "train");
    if (train.size() != 60000)
        fail("{}: expected the 60,000 MNIST training images, found {}",
             (data_dir / "mnist").string(), train.size());
    Mnist mnist;
    mnist.training = slice(train, 0, 50000);
    mnist.validation = slice(train, 50000, 10000);
    mnist.test = read_pair(data_dir, "t10k");
    if (mnist.test.size() != 10000)
        fail("{}: expected the 10,000 MNIST test images, found {}", (data_dir / "mnist").string(),
             mnist.test.size());
    return mnist;
}

}  // namespace nn
