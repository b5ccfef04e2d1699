import unittest

from solution import to_rna


class RnaTest(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(to_rna(""), "")

    def test_cytosine(self):
        self.assertEqual(to_rna("C"), "G")

    def test_guanine(self):
        self.assertEqual(to_rna("G"), "C")

    def test_thymine(self):
        self.assertEqual(to_rna("T"), "A")

    def test_adenine(self):
        self.assertEqual(to_rna("A"), "U")

    def test_strand(self):
        self.assertEqual(to_rna("ACGTGGTCTTAA"), "UGCACCAGAAUU")
