import unittest

from solution import slices


class SeriesTest(unittest.TestCase):
    def test_length_one(self):
        self.assertEqual(slices("1", 1), ["1"])

    def test_length_two(self):
        self.assertEqual(slices("35", 2), ["35"])

    def test_several(self):
        self.assertEqual(slices("49142", 3), ["491", "914", "142"])

    def test_whole(self):
        self.assertEqual(slices("777777", 6), ["777777"])

    def test_too_long(self):
        with self.assertRaises(ValueError):
            slices("12345", 6)

    def test_zero(self):
        with self.assertRaises(ValueError):
            slices("12345", 0)

    def test_negative(self):
        with self.assertRaises(ValueError):
            slices("123", -1)

    def test_empty_series(self):
        with self.assertRaises(ValueError):
            slices("", 1)
