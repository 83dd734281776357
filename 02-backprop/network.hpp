// A feed-forward network of sigmoid neurons that learns: network.py from
// chapter 1 of Michael Nielsen's "Neural Networks and Deep Learning", with
// SGD, update_mini_batch and backprop, plus chapter 3's cross-entropy cost,
// L2 regularization and scaled weight initialization (network2.py).
//
// The book writes one example as a column vector x of shape (784, 1) and a
// layer as a' = sigmoid(w a + b). We stack a mini-batch of m examples as the
// ROWS of a matrix, shape (m, 784), so the same layer reads
//     a' = sigmoid(a w^T + b)          a: (m, n_in), w: (n_out, n_in), b: (1, n_out)
// with w stored exactly as the book stores it: weights[l](j, k) connects
// neuron k of layer l to neuron j of layer l+1. Backprop then runs on the
// whole mini-batch at once, as matrices: the book's chapter 2 exercise.
// The book's own way, one example at a time as column vectors, sits beside it
// (Backprop::per_example, backprop_one): the same steps up to float rounding, slower.
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/mnist.hpp"
#include "common/network_file.hpp"
#include "common/random.hpp"
#include "common/tensor.hpp"

// sigmoid(z) = 1 / (1 + e^-z), element by element.
inline void sigmoid(const nn::Matrix& z, nn::Matrix& out) {
    out = (1.0f + (-z.array()).exp()).inverse().matrix();
}

// The book's sigmoid_prime(z) = sigmoid(z) (1 - sigmoid(z)), computed from
// a = sigmoid(z), which the forward pass kept: a (1 - a), element by element.
// a: any shape -> the same shape.
// Exercise: sigmoid_prime
inline nn::Matrix sigmoid_prime(const nn::Matrix& a) {
    return (a.array() * (1.0f - a.array())).matrix();
}

// The cost C_x of one example, summed over a batch, and its output error
// delta^L = dC/dz^L (BP1 in chapter 2).
enum class Cost { quadratic, cross_entropy };

// quadratic:     C = 1/2 ||a - y||^2                    delta^L = (a - y) * sigmoid'(z)
// cross-entropy: C = -sum(y ln a + (1 - y) ln(1 - a))   delta^L = a - y
// (a - y is the book's cost_derivative(a, y); network2.py calls this cost.delta).
inline double cost_fn(Cost cost, const nn::Matrix& a, const nn::Matrix& y) {
    const Eigen::ArrayXXd ad = a.cast<double>().array(), yd = y.cast<double>().array();
    if (cost == Cost::quadratic) return 0.5 * (ad - yd).square().sum();
    // Clamped so that a saturated neuron gives a large cost, not NaN (the
    // book's np.nan_to_num).
    const Eigen::ArrayXXd ac = ad.max(1e-12).min(1 - 1e-12);
    return -(yd * ac.log() + (1 - yd) * (1 - ac).log()).sum();
}

// a, y: (m, 10) -> delta: (m, 10).
// Exercise: cost_delta
inline void cost_delta(Cost cost, const nn::Matrix& a, const nn::Matrix& y, nn::Matrix& delta) {
    if (cost == Cost::quadratic)
        delta = ((a - y).array() * sigmoid_prime(a).array()).matrix();
    else
        delta = a - y;
}

// d(cost)/d(biases) and d(cost)/d(weights), summed over a mini-batch.
struct Gradients {
    std::vector<nn::RowVector> nabla_b;  // like biases
    std::vector<nn::Matrix> nabla_w;     // like weights
};

// How update_mini_batch gets the gradient: backprop over the whole mini-batch
// as matrices, or the book's loop of backprop_one over its examples.
enum class Backprop { matrix, per_example };

// How the weights start: "large" N(0, 1) as in chapter 1, or "scaled"
// N(0, 1/n_in) as in chapter 3, which keeps the neurons from saturating.
enum class Init { large, scaled };

class Network {
public:
    // sizes: the number of neurons in each layer, e.g. {784, 30, 10}.
    // Biases are drawn from N(0, 1); weights from N(0, 1) or N(0, 1/n_in).
    // The input layer has no biases.
    Network(std::vector<int> sizes, nn::Rng& rng, Cost cost = Cost::quadratic,
            Init init = Init::large)
        : sizes(std::move(sizes)), cost(cost) {
        for (std::size_t l = 1; l < this->sizes.size(); ++l) {
            biases.emplace_back(this->sizes[l]);
            rng.fill_normal(nn::as_span(biases.back()));
        }
        for (std::size_t l = 1; l < this->sizes.size(); ++l) {
            weights.emplace_back(this->sizes[l], this->sizes[l - 1]);
            const float stddev = init == Init::scaled ? 1.0f / std::sqrt(float(this->sizes[l - 1])) : 1.0f;
            rng.fill_normal(nn::as_span(weights.back()), 0.0f, stddev);
        }
    }

    int num_layers() const { return static_cast<int>(sizes.size()); }

    // Returns the network's output for the inputs `a`: (m, sizes[0]) -> (m, sizes.back()).
    // If `activations` is given, it receives every layer's activation, input first.
    nn::Matrix feedforward(const nn::Matrix& a, std::vector<nn::Matrix>* activations = nullptr) const {
        nn::Matrix activation = a, z;
        if (activations) activations->assign(1, activation);
        for (std::size_t l = 0; l < weights.size(); ++l) {
            z.noalias() = activation * weights[l].transpose();  // (m, n_in) x (n_in, n_out)
            z.rowwise() += biases[l];
            sigmoid(z, activation);
            if (activations) activations->push_back(activation);
        }
        return activation;
    }

    // Trains with mini-batch stochastic gradient descent. Each epoch shuffles
    // training_data, cuts it into mini-batches of mini_batch_size and takes
    // one gradient step per mini-batch with learning rate eta and L2
    // regularization lmbda, its gradient computed in the given `form`. After
    // each epoch, `after_epoch(epoch)` is called (to evaluate, print, save metrics).
    void SGD(const nn::Dataset& training_data, int epochs, int mini_batch_size, float eta,
             float lmbda, nn::Rng& rng, const std::function<void(int)>& after_epoch,
             Backprop form = Backprop::matrix) {
        const Eigen::Index n = training_data.size();
        std::vector<Eigen::Index> order(n);
        for (Eigen::Index i = 0; i < n; ++i) order[i] = i;
        nn::Matrix x, y;  // one mini-batch: (m, 784) images and (m, 10) one-hot labels
        for (int epoch = 0; epoch < epochs; ++epoch) {
            rng.shuffle(order);
            for (Eigen::Index k = 0; k < n; k += mini_batch_size) {
                const Eigen::Index m = std::min<Eigen::Index>(mini_batch_size, n - k);
                x.resize(m, training_data.images.cols());  // no-op unless m changes
                y.setZero(m, sizes.back());
                for (Eigen::Index i = 0; i < m; ++i) {
                    x.row(i) = training_data.images.row(order[k + i]);
                    y(i, training_data.labels[order[k + i]]) = 1.0f;
                }
                update_mini_batch(x, y, eta, lmbda, n, form);
            }
            after_epoch(epoch);
        }
    }

    // One step of gradient descent on the mini-batch (x, y), x: (m, 784),
    // y: (m, 10), with n the size of the whole training set:
    //     w -> (1 - eta lmbda / n) w - (eta / m) sum_x dC_x/dw
    //     b ->                     b - (eta / m) sum_x dC_x/db
    // The sums come from backprop over the whole batch, or (per_example) from
    // the book's loop over its examples.
    // Exercise: update_mini_batch
    void update_mini_batch(const nn::Matrix& x, const nn::Matrix& y, float eta, float lmbda,
                           Eigen::Index n, Backprop form = Backprop::matrix) {
        if (form == Backprop::matrix) backprop(x, y, nabla_);
        else backprop_each(x, y, nabla_);
        const float m = static_cast<float>(x.rows());
        const float decay = 1.0f - eta * lmbda / static_cast<float>(n);
        for (std::size_t l = 0; l < weights.size(); ++l) {
            weights[l] = decay * weights[l] - (eta / m) * nabla_.nabla_w[l];
            biases[l] -= (eta / m) * nabla_.nabla_b[l];
        }
    }

    // Backpropagation over a whole mini-batch at once. Returns in `nabla` the
    // gradient of the cost summed over the m examples: x: (m, 784), y: (m, 10).
    // Exercise: backprop
    void backprop(const nn::Matrix& x, const nn::Matrix& y, Gradients& nabla) {
        const std::size_t L = weights.size();  // layers of weights
        nabla.nabla_b.resize(L);
        nabla.nabla_w.resize(L);
        zs_.resize(L);
        activations_.resize(L + 1);
        deltas_.resize(L);
        // Feedforward, keeping every z and activation. Layers count from 0 (the
        // input, one less than the book): activations_[l] belongs to layer l, and
        // weights[l], biases[l], zs_[l], deltas_[l] to layer l+1.
        // (lazyProduct: for a mini-batch of 10 rows, computing each coefficient
        // as a dot product directly is faster than Eigen's blocked matrix
        // product, whose set-up costs more than these small products do.)
        for (std::size_t l = 0; l < L; ++l) {
            const nn::Matrix& a = l == 0 ? x : activations_[l];
            zs_[l].noalias() = a.lazyProduct(weights[l].transpose());  // (m, n_in) x (n_in, n_out)
            zs_[l].rowwise() += biases[l];
            sigmoid(zs_[l], activations_[l + 1]);
        }
        // Backward pass. BP1: the output error delta^L.
        cost_delta(cost, activations_[L], y, deltas_[L - 1]);
        for (std::size_t l = L; l-- > 0;) {
            if (l + 1 < L) {
                // BP2, one layer back: the next layer's error through its weights,
                // times sigmoid' of this layer: (m, n_next) x (n_next, n_this).
                deltas_[l].noalias() = deltas_[l + 1].lazyProduct(weights[l + 1]);
                deltas_[l].array() *= sigmoid_prime(activations_[l + 1]).array();
            }
            // BP3 and BP4, summed over the batch: dC/db = sum of delta rows,
            // dC/dw = delta^T a_prev: (n_out, m) x (m, n_in).
            const nn::Matrix& a_prev = l == 0 ? x : activations_[l];
            nabla.nabla_b[l] = deltas_[l].colwise().sum();
            nabla.nabla_w[l].noalias() = deltas_[l].transpose() * a_prev;
        }
    }

    // What the last backprop kept, layer by layer: zs()[l] and deltas()[l] =
    // dC/dz belong to layer l+1, (m, sizes[l+1]); activations()[l] to layer l.
    const std::vector<nn::Matrix>& zs() const { return zs_; }
    const std::vector<nn::Matrix>& activations() const { return activations_; }
    const std::vector<nn::Matrix>& deltas() const { return deltas_; }

    // The book's update_mini_batch loop, as network.py writes it: start nabla
    // at zero, add backprop_one of each example (x, y) of the mini-batch, one
    // at a time. x: (m, 784), y: (m, 10), one example per row; nabla: the sums.
    void backprop_each(const nn::Matrix& x, const nn::Matrix& y, Gradients& nabla) {
        nabla.nabla_b.resize(weights.size());
        nabla.nabla_w.resize(weights.size());
        for (std::size_t l = 0; l < weights.size(); ++l) {  // np.zeros(b.shape), np.zeros(w.shape)
            nabla.nabla_b[l].setZero(biases[l].size());
            nabla.nabla_w[l].setZero(weights[l].rows(), weights[l].cols());
        }
        for (Eigen::Index i = 0; i < x.rows(); ++i) {  // for x, y in mini_batch:
            x_one_ = x.row(i).transpose();  // (784, 1), a column as in the book
            y_one_ = y.row(i).transpose();  // (10, 1)
            backprop_one(x_one_, y_one_, delta_nabla_);
            for (std::size_t l = 0; l < weights.size(); ++l) {
                nabla.nabla_b[l] += delta_nabla_.nabla_b[l];
                nabla.nabla_w[l] += delta_nabla_.nabla_w[l];
            }
        }
    }

    // The book's backprop(x, y) of ONE example, with column vectors as in
    // network.py: x (784, 1), y (10, 1), a layer z = w a + b. Returns in
    // `delta_nabla` this example's dC_x/db (as a row, like biases) and dC_x/dw.
    // Exercise: backprop_one
    void backprop_one(const nn::Matrix& x, const nn::Matrix& y, Gradients& delta_nabla) {
        const std::size_t L = weights.size();
        delta_nabla.nabla_b.resize(L);
        delta_nabla.nabla_w.resize(L);
        one_activations_.resize(L + 1);
        one_deltas_.resize(L);
        // Feedforward, keeping every activation (sigmoid_prime needs only a).
        one_activations_[0] = x;
        for (std::size_t l = 0; l < L; ++l) {
            one_z_.noalias() = weights[l] * one_activations_[l];  // (n_out, n_in) x (n_in, 1)
            one_z_ += biases[l].transpose();
            sigmoid(one_z_, one_activations_[l + 1]);
        }
        // Backward pass. BP1: delta = cost_derivative(a, y) * sigmoid_prime(z).
        cost_delta(cost, one_activations_[L], y, one_deltas_[L - 1]);
        for (std::size_t l = L; l-- > 0;) {
            if (l + 1 < L) {
                // BP2: delta = np.dot(w^T, delta) * sp: (n_this, n_next) x (n_next, 1)
                one_deltas_[l].noalias() = weights[l + 1].transpose() * one_deltas_[l + 1];
                one_deltas_[l].array() *= sigmoid_prime(one_activations_[l + 1]).array();
            }
            // BP3: nabla_b = delta; BP4: nabla_w = np.dot(delta, a_prev^T): (n_out, 1) x (1, n_in)
            delta_nabla.nabla_b[l] = one_deltas_[l].transpose();
            delta_nabla.nabla_w[l].noalias() = one_deltas_[l] * one_activations_[l].transpose();
        }
    }

    // Returns how many of `data`'s images the network classifies correctly:
    // its answer is the output neuron with the highest activation.
    int evaluate(const nn::Dataset& data) const {
        const nn::Matrix output = feedforward(data.images);  // (n, 10)
        int correct = 0;
        for (Eigen::Index i = 0; i < output.rows(); ++i) {
            Eigen::Index guess;
            output.row(i).maxCoeff(&guess);
            correct += guess == data.labels[i];
        }
        return correct;
    }

    // The cost averaged over (x, y), plus the L2 term (lmbda / 2n) sum w^2 with
    // n = x.rows(): network2.py's total_cost.
    double total_cost(const nn::Matrix& x, const nn::Matrix& y, float lmbda) const {
        const double n = static_cast<double>(x.rows());
        double cost_sum = cost_fn(cost, feedforward(x), y) / n;
        for (const nn::Matrix& w : weights)
            cost_sum += 0.5 * (lmbda / n) * w.cast<double>().squaredNorm();
        return cost_sum;
    }

    std::vector<int> sizes;
    std::vector<nn::RowVector> biases;  // biases[l]: (1, sizes[l+1])
    std::vector<nn::Matrix> weights;    // weights[l]: (sizes[l+1], sizes[l])
    Cost cost = Cost::quadratic;

private:
    // Buffers reused by every mini-batch, so training allocates nothing per step.
    std::vector<nn::Matrix> zs_, activations_, deltas_;
    Gradients nabla_;
    // The same for backprop_one: one example's columns.
    nn::Matrix x_one_, y_one_, one_z_;
    std::vector<nn::Matrix> one_activations_, one_deltas_;
    Gradients delta_nabla_;
};

// A trained network on disk, in the file format 01-mnist-mlp reads too
// (common/network_file.hpp; the layout is in ENGINEERING.md).
inline void save_network(const Network& net, const std::string& path) {
    nn::save_network_file(path, net.sizes, net.biases, net.weights);
}

inline Network load_network(const std::string& path) {
    nn::NetworkFile file = nn::load_network_file(path);
    nn::Rng unused(0);
    Network net(file.sizes, unused);
    net.biases = std::move(file.biases);
    net.weights = std::move(file.weights);
    return net;
}
