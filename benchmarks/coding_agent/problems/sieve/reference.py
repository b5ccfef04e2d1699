def primes(limit):
    if limit < 2:
        return []
    marks = [True] * (limit + 1)
    marks[0] = marks[1] = False
    for n in range(2, int(limit ** 0.5) + 1):
        if marks[n]:
            for m in range(n * n, limit + 1, n):
                marks[m] = False
    return [n for n, prime in enumerate(marks) if prime]
