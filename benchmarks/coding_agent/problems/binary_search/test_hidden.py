import unittest

from solution import find


class BinarySearchTest(unittest.TestCase):
    def test_single(self):
        self.assertEqual(find([6], 6), 0)

    def test_middle(self):
        self.assertEqual(find([1, 3, 4, 6, 8, 9, 11], 6), 3)

    def test_first(self):
        self.assertEqual(find([1, 3, 4, 6, 8, 9, 11], 1), 0)

    def test_last(self):
        self.assertEqual(find([1, 3, 4, 6, 8, 9, 11], 11), 6)

    def test_large(self):
        self.assertEqual(find(list(range(0, 200000, 2)), 144), 72)

    def test_missing(self):
        with self.assertRaises(ValueError) as caught:
            find([1, 3, 4, 6, 8, 9, 11], 7)
        self.assertEqual(str(caught.exception), "value not in array")

    def test_empty(self):
        with self.assertRaises(ValueError):
            find([], 1)
