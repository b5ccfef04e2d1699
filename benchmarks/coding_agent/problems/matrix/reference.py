class Matrix:
    def __init__(self, matrix_string):
        self.rows = [[int(x) for x in line.split()] for line in matrix_string.splitlines()]

    def row(self, index):
        return list(self.rows[index - 1])

    def column(self, index):
        return [r[index - 1] for r in self.rows]
