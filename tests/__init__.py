"""The test suite as a package, so ``tests.support`` imports the same way from every folder.

pytest's default ("prepend") import mode puts the first directory above a package on
sys.path: with this file that is the repository root, so ``tests.support`` (and
``bench``) import by name instead of through sys.path edits in each folder.
"""
