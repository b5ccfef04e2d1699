import unittest

from solution import distance


class HammingTest(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(distance("", ""), 0)

    def test_identical(self):
        self.assertEqual(distance("GGACTGAAATCTG", "GGACTGAAATCTG"), 0)

    def test_single_difference(self):
        self.assertEqual(distance("G", "T"), 1)

    def test_long_different(self):
        self.assertEqual(distance("GGACGGATTCTG", "AGGACGGATTCT"), 9)

    def test_first_longer(self):
        with self.assertRaises(ValueError):
            distance("AATG", "AAA")

    def test_second_longer(self):
        with self.assertRaises(ValueError):
            distance("ATA", "AGTG")
