# decaenv, CPU image: torch (CPU build), decaenv from its wheel, the compiled CPU rasterizer built at image
# build time, the data dir as a volume, `decaenv doctor` as the health check.
#   docker build -t decaenv:cpu .
#   docker run --rm -v decaenv-data:/data decaenv:cpu fetch --username YOUR_FLAME_LOGIN   # once, fills the volume
#   docker run --rm -v decaenv-data:/data -v "$PWD:/work" decaenv:cpu reconstruct -i photos -o results
# GPU image: docker/cuda.Dockerfile (on an official PyTorch CUDA base). See docs/docker.md.

# -- stage 1: build decaenv's wheel (the same artifact `python -m build` makes) --------------------------------
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY manifests ./manifests
COPY docs ./docs
COPY decaenv ./decaenv
RUN python -m pip install --no-cache-dir "build==1.6.1" \
    && python -m build --wheel --outdir /dist .

# -- stage 2: the runtime image ------------------------------------------------------------------------------------
FROM python:3.11-slim
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DECAENV_HOME=/opt/decaenv \
    DECAENV_DATA_DIR=/data \
    DECAENV_NO_PROGRESS=1
# g++ compiles the CPU rasterizer below; libgomp is its OpenMP runtime. Debian's versions are not pinned: the
# slim base image fixes the release, and its security updates should come in.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# The build arg TORCH_SPEC pins torch (hadolint cannot see through it).
# hadolint ignore=DL3013
RUN python -m pip install --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"
COPY --from=wheel /dist /dist
RUN python -m pip install "$(ls /dist/decaenv-*.whl)[runtime,fetch]" \
    && rm -rf /dist
# Compiled and checked against the reference rasterizer now, into $DECAENV_HOME/cache/build (not the volume).
RUN decaenv build --cpu
VOLUME ["/data"]
WORKDIR /work
HEALTHCHECK --interval=10m --timeout=120s --start-period=30s --retries=2 \
    CMD ["decaenv", "-q", "doctor", "--no-build", "--require", "torch,rasterizer=cpu"]
ENTRYPOINT ["decaenv"]
CMD ["doctor"]
