import unittest

from solution import steps


class CollatzTest(unittest.TestCase):
    def test_one(self):
        self.assertEqual(steps(1), 0)

    def test_even(self):
        self.assertEqual(steps(16), 4)

    def test_mixed(self):
        self.assertEqual(steps(12), 9)

    def test_large(self):
        self.assertEqual(steps(1000000), 152)

    def test_zero(self):
        with self.assertRaises(ValueError):
            steps(0)

    def test_negative(self):
        with self.assertRaises(ValueError):
            steps(-15)
