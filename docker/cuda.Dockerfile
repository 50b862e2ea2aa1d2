# decaenv, CUDA image on an official PyTorch CUDA base (its torch, CUDA toolkit and nvcc are used as they are).
#   docker build -f docker/cuda.Dockerfile -t decaenv:cuda .
#   docker run --rm --gpus all -v decaenv-data:/data -v "$PWD:/work" decaenv:cuda reconstruct -i photos -o results
# The -devel base has nvcc, which `decaenv build --cuda` needs; no GPU is visible while an image builds, so the
# kernels are compiled for TORCH_CUDA_ARCH_LIST and checked against the reference on the first `doctor` run.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel

# -- stage 1: build decaenv's wheel --------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY manifests ./manifests
COPY docs ./docs
COPY decaenv ./decaenv
RUN python -m pip install --no-cache-dir "build==1.6.1" \
    && python -m build --wheel --outdir /dist .

# -- stage 2: the runtime image ------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG TORCH_CUDA_ARCH_LIST="7.0;7.5;8.0;8.6;8.9;9.0+PTX"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DECAENV_HOME=/opt/decaenv \
    DECAENV_DATA_DIR=/data \
    DECAENV_NO_PROGRESS=1 \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST}
COPY --from=wheel /dist /dist
RUN python -m pip install "$(ls /dist/decaenv-*.whl)[runtime,fetch]" \
    && rm -rf /dist
RUN decaenv build --cpu --cuda
VOLUME ["/data"]
WORKDIR /work
HEALTHCHECK --interval=10m --timeout=120s --start-period=60s --retries=2 \
    CMD ["decaenv", "-q", "doctor", "--no-build", "--require", "torch,cuda,rasterizer=cuda"]
ENTRYPOINT ["decaenv"]
CMD ["doctor"]
