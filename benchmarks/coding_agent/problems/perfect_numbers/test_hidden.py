import unittest

from solution import classify


class PerfectNumbersTest(unittest.TestCase):
    def test_six(self):
        self.assertEqual(classify(6), "perfect")

    def test_large_perfect(self):
        self.assertEqual(classify(33550336), "perfect")

    def test_twelve(self):
        self.assertEqual(classify(12), "abundant")

    def test_large_abundant(self):
        self.assertEqual(classify(33550335), "abundant")

    def test_prime(self):
        self.assertEqual(classify(2), "deficient")

    def test_one(self):
        self.assertEqual(classify(1), "deficient")

    def test_zero(self):
        with self.assertRaises(ValueError):
            classify(0)
