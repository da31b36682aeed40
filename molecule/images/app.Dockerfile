# The app host of the Molecule scenarios: Redis, PostgreSQL 15, the lab's Node tools (with pm2
# and the sample app), nginx and pebble (the ACME test server) in one container, started and
# seeded by the scenario (lab/lab.sh up), never at build time.
# Built by molecule/images/build.sh, which prepares the context (requirements.txt, lab/).
ARG BASE
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive
# procps: lab/lab.sh checks its pids with ps; curl: it checks that the sample app answers.
# Debian creates a "main" cluster on install; the lab makes its own under /opt/oncall/.lab.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends redis-server postgresql-15 nodejs python3-venv procps curl nginx-light pebble \
 && pg_dropcluster 15 main \
 && rm -rf /var/lib/apt/lists/*

# Installed by the image's own pip, so that environment markers are those of its Python
# (3.11.2: redis then needs async-timeout), from PyPI, trusting the build host's CA bundle.
COPY requirements.txt ca.crt /opt/oncall/
RUN python3 -m venv /opt/oncall/venv \
 && PIP_CERT=/opt/oncall/ca.crt /opt/oncall/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check \
      -r /opt/oncall/requirements.txt \
 && rm /opt/oncall/ca.crt

COPY lab /opt/oncall/lab
