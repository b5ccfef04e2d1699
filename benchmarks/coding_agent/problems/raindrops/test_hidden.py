import unittest

from solution import convert


class RaindropsTest(unittest.TestCase):
    def test_one(self):
        self.assertEqual(convert(1), "1")

    def test_three(self):
        self.assertEqual(convert(3), "Pling")

    def test_five(self):
        self.assertEqual(convert(5), "Plang")

    def test_seven(self):
        self.assertEqual(convert(7), "Plong")

    def test_fifteen(self):
        self.assertEqual(convert(15), "PlingPlang")

    def test_105(self):
        self.assertEqual(convert(105), "PlingPlangPlong")

    def test_52(self):
        self.assertEqual(convert(52), "52")
