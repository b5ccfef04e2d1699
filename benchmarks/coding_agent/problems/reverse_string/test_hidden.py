import unittest

from solution import reverse


class ReverseTest(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(reverse(""), "")

    def test_word(self):
        self.assertEqual(reverse("robot"), "tobor")

    def test_capitalised(self):
        self.assertEqual(reverse("Ramen"), "nemaR")

    def test_sentence(self):
        self.assertEqual(reverse("I'm hungry!"), "!yrgnuh m'I")

    def test_palindrome(self):
        self.assertEqual(reverse("racecar"), "racecar")
