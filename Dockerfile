FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hashsvc ./hashsvc
COPY workers ./workers
RUN pip install --no-cache-dir .
RUN useradd --system hashsvc
USER hashsvc
EXPOSE 8000
CMD ["hashsvc", "serve", "--host", "0.0.0.0"]
