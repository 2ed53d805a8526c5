# One image for the server, the gateway and the simulator: `chargenet <part>`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protocol protocol
COPY firmware_sim firmware_sim
COPY gateway gateway
COPY server server
COPY chargenet chargenet
RUN pip install --no-cache-dir .
ENTRYPOINT ["chargenet"]
