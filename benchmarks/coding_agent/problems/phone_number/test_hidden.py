import unittest

from solution import clean


class PhoneNumberTest(unittest.TestCase):
    def test_plain(self):
        self.assertEqual(clean("(223) 456-7890"), "2234567890")

    def test_dots(self):
        self.assertEqual(clean("223.456.7890"), "2234567890")

    def test_country_code(self):
        self.assertEqual(clean("+1 (223) 456-7890"), "2234567890")

    def test_nine_digits(self):
        with self.assertRaises(ValueError):
            clean("123456789")

    def test_eleven_not_1(self):
        with self.assertRaises(ValueError):
            clean("22234567890")

    def test_letters(self):
        with self.assertRaises(ValueError):
            clean("523-abc-7890")

    def test_punctuation(self):
        with self.assertRaises(ValueError):
            clean("523-@:!-7890")

    def test_area_code_zero(self):
        with self.assertRaises(ValueError):
            clean("(023) 456-7890")

    def test_exchange_code_one(self):
        with self.assertRaises(ValueError):
            clean("(223) 156-7890")
