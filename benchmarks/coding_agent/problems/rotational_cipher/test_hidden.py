import unittest

from solution import rotate


class RotationalCipherTest(unittest.TestCase):
    def test_by_0(self):
        self.assertEqual(rotate("a", 0), "a")

    def test_by_26(self):
        self.assertEqual(rotate("a", 26), "a")

    def test_wrap(self):
        self.assertEqual(rotate("n", 13), "a")

    def test_capitals(self):
        self.assertEqual(rotate("OMG", 5), "TRL")

    def test_numbers(self):
        self.assertEqual(rotate("Testing 1 2 3 testing", 4), "Xiwxmrk 1 2 3 xiwxmrk")

    def test_punctuation(self):
        self.assertEqual(rotate("Let's eat, Grandma!", 21), "Gzo'n zvo, Bmviyhv!")
