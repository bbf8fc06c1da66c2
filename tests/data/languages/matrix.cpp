// A small dense matrix with value semantics.
#include <cstddef>
#include <stdexcept>
#include <vector>

namespace linalg {

class Matrix {
public:
    Matrix(std::size_t rows, std::size_t cols) : rows_(rows), cols_(cols), values_(rows * cols, 0.0) {}

    double &at(std::size_t row, std::size_t col) {
        if (row >= rows_ || col >= cols_) {
            throw std::out_of_range("matrix index");
        }
        return values_[row * cols_ + col];
    }

    double at(std::size_t row, std::size_t col) const {
        return values_.at(row * cols_ + col);
    }

    Matrix operator*(const Matrix &other) const {
        if (cols_ != other.rows_) {
            throw std::invalid_argument("shapes do not match");
        }
        Matrix result(rows_, other.cols_);
        for (std::size_t i = 0; i < rows_; ++i) {
            for (std::size_t k = 0; k < cols_; ++k) {
                const double left = at(i, k);
                for (std::size_t j = 0; j < other.cols_; ++j) {
                    result.at(i, j) += left * other.at(k, j);
                }
            }
        }
        return result;
    }

    std::size_t rows() const { return rows_; }
    std::size_t cols() const { return cols_; }

private:
    std::size_t rows_;
    std::size_t cols_;
    std::vector<double> values_;
};

}  // namespace linalg
