"""The method's building blocks: features, preprocessing, the mixture, the classifiers.

Everything here takes and returns arrays, DataFrames and fitted objects; nothing reads
or writes a file.
"""
