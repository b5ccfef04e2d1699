import unittest

from solution import roman


class RomanTest(unittest.TestCase):
    def test_1(self):
        self.assertEqual(roman(1), "I")

    def test_4(self):
        self.assertEqual(roman(4), "IV")

    def test_9(self):
        self.assertEqual(roman(9), "IX")

    def test_48(self):
        self.assertEqual(roman(48), "XLVIII")

    def test_402(self):
        self.assertEqual(roman(402), "CDII")

    def test_1994(self):
        self.assertEqual(roman(1994), "MCMXCIV")

    def test_3999(self):
        self.assertEqual(roman(3999), "MMMCMXCIX")
