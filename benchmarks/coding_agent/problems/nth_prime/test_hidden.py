import unittest

from solution import prime


class NthPrimeTest(unittest.TestCase):
    def test_first(self):
        self.assertEqual(prime(1), 2)

    def test_second(self):
        self.assertEqual(prime(2), 3)

    def test_sixth(self):
        self.assertEqual(prime(6), 13)

    def test_big(self):
        self.assertEqual(prime(10001), 104743)

    def test_zeroth(self):
        with self.assertRaises(ValueError):
            prime(0)
