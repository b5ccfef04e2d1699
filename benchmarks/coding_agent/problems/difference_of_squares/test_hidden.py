import unittest

from solution import difference_of_squares, square_of_sum, sum_of_squares


class DifferenceOfSquaresTest(unittest.TestCase):
    def test_square_of_sum_1(self):
        self.assertEqual(square_of_sum(1), 1)

    def test_square_of_sum_100(self):
        self.assertEqual(square_of_sum(100), 25502500)

    def test_sum_of_squares_5(self):
        self.assertEqual(sum_of_squares(5), 55)

    def test_sum_of_squares_100(self):
        self.assertEqual(sum_of_squares(100), 338350)

    def test_difference_10(self):
        self.assertEqual(difference_of_squares(10), 2640)

    def test_difference_100(self):
        self.assertEqual(difference_of_squares(100), 25164150)
