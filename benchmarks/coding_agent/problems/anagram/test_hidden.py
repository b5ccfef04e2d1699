import unittest

from solution import find_anagrams


class AnagramTest(unittest.TestCase):
    def test_no_matches(self):
        self.assertEqual(find_anagrams("diaper", ["hello", "world", "zombies", "pants"]), [])

    def test_two_anagrams(self):
        self.assertEqual(find_anagrams("solemn", ["lemons", "cherry", "melons"]), ["lemons", "melons"])

    def test_subset_is_not_anagram(self):
        self.assertEqual(find_anagrams("good", ["dog", "goody"]), [])

    def test_case_insensitive(self):
        self.assertEqual(find_anagrams("Orchestra", ["cashregister", "Carthorse", "radishes"]), ["Carthorse"])

    def test_not_itself(self):
        self.assertEqual(find_anagrams("BANANA", ["BANANA", "Banana", "banana"]), [])

    def test_repeated_letters_count(self):
        self.assertEqual(find_anagrams("tapper", ["patter"]), [])
