import unittest

from solution import flatten


class FlattenTest(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(flatten([]), [])

    def test_flat(self):
        self.assertEqual(flatten([0, 1, 2]), [0, 1, 2])

    def test_nested(self):
        self.assertEqual(flatten([1, [2, 3, 4, 5, 6, 7], 8]), [1, 2, 3, 4, 5, 6, 7, 8])

    def test_deep(self):
        self.assertEqual(flatten([0, 2, [[2, 3], 8, 100, 4, [[[50]]]], -2]), [0, 2, 2, 3, 8, 100, 4, 50, -2])

    def test_none(self):
        self.assertEqual(flatten([1, [2, None, [3]], None, 4]), [1, 2, 3, 4])

    def test_all_none(self):
        self.assertEqual(flatten([None, [[[None]]], None]), [])
