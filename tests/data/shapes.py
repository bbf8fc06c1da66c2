"""Small geometry helpers used by the language-server tests (a realistic file to complete in)."""
import math


def circle_area(radius):
    return math.pi * radius ** 2


def rectangle_area(width, height):
    return 


def describe(shapes):
    total = 0.0
    for name, area in shapes:
        total += area
        print(f"{name}: {area:.2f}")
    return total
