"""Safe readers for DECA's and FLAME's data files (allowlisted unpickling, FLAME without chumpy).

Import the submodules: `decaenv.loaders.flame`, `decaenv.loaders.safe_pickle` (numpy is needed; torch only
for files that hold torch tensors).
"""
