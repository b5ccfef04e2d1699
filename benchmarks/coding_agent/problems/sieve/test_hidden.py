import unittest

from solution import primes


class SieveTest(unittest.TestCase):
    def test_no_primes(self):
        self.assertEqual(primes(1), [])

    def test_first_prime(self):
        self.assertEqual(primes(2), [2])

    def test_ten(self):
        self.assertEqual(primes(10), [2, 3, 5, 7])

    def test_limit_is_prime(self):
        self.assertEqual(primes(13), [2, 3, 5, 7, 11, 13])

    def test_thousand(self):
        result = primes(1000)
        self.assertEqual(len(result), 168)
        self.assertEqual(result[-1], 997)
