import unittest

from solution import rebase


class AllYourBaseTest(unittest.TestCase):
    def test_binary_to_decimal(self):
        self.assertEqual(rebase(2, [1, 0, 1], 10), [5])

    def test_decimal_to_binary(self):
        self.assertEqual(rebase(10, [4, 2], 2), [1, 0, 1, 0, 1, 0])

    def test_trinary_to_hex(self):
        self.assertEqual(rebase(3, [1, 1, 2, 0], 16), [2, 10])

    def test_empty(self):
        self.assertEqual(rebase(2, [], 10), [0])

    def test_leading_zeros(self):
        self.assertEqual(rebase(7, [0, 6, 0], 10), [4, 2])

    def test_invalid_digit(self):
        with self.assertRaises(ValueError):
            rebase(2, [1, 2, 1, 0, 1, 0], 10)

    def test_negative_digit(self):
        with self.assertRaises(ValueError):
            rebase(2, [1, -1, 1, 0, 1, 0], 10)

    def test_bad_input_base(self):
        with self.assertRaises(ValueError):
            rebase(1, [0], 10)

    def test_bad_output_base(self):
        with self.assertRaises(ValueError):
            rebase(2, [1, 0, 1], 0)
