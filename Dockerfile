# One image for the server, the gateway and the simulator: `chargenet <part>`.
FROM python:3.11-slim
WORKDIR /app
# IPAGothic: Japanese names in the after-action reports' PDF and PNG (server/reports/plots.py)
RUN apt-get update && apt-get install -y --no-install-recommends fonts-ipafont-gothic \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY protocol protocol
COPY firmware_sim firmware_sim
COPY gateway gateway
COPY server server
COPY chargenet chargenet
RUN pip install --no-cache-dir .
ENTRYPOINT ["chargenet"]
