import os


def read_lines(path):
    """Return the lines of a text file without their newlines."""
    with open(path) as handle:
        return [line.rstrip("\n") for line in handle]


def count_words(lines):
    total = 0
    for line in lines:
        
    return total


if __name__ == "__main__":
    print(count_words(read_lines(os.path.abspath(__file__))))
