"""Safe readers for DECA's and FLAME's data files (allowlisted unpickling, FLAME without chumpy).

Import the submodules: `decaenv.loaders.flame` (load/validate/convert FLAME, `preferred_flame_file`),
`decaenv.loaders.safe_pickle` (the allowlisted unpickler, `load_object_npy`), `decaenv.loaders.convert` (the
`decaenv convert flame` operation). numpy is needed; torch only for files that hold torch tensors; chumpy and
scipy never (`decaenv.loaders._standins` rebuilds their objects with numpy).
"""
