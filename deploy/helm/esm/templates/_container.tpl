{{/* The esm container (the same in every mode): image, port, env, probes, resources, security. */}}
{{- define "esm.container" -}}
{{- $v := .root.Values -}}
# No command or args: the image runs
# `tini -- esm run --config /etc/esm/config.yaml --log-format json`.
image: {{ $v.image.repository }}:{{ default .root.Chart.AppVersion $v.image.tag }}
imagePullPolicy: {{ $v.image.pullPolicy }}
ports:
  - {name: metrics, containerPort: 9090, protocol: TCP}
  {{- if $v.api.listen }}
  - {name: api, containerPort: {{ splitList ":" $v.api.listen | last | int }}, protocol: TCP}
  {{- end }}
env:
  {{- with $v.env }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if and $v.api.listen $v.api.credentialsSecret }}
  - name: ESM_API_ACCESS_KEY_ID
    valueFrom: {secretKeyRef: {name: {{ $v.api.credentialsSecret }}, key: access-key-id}}
  - name: ESM_API_SECRET_ACCESS_KEY
    valueFrom: {secretKeyRef: {name: {{ $v.api.credentialsSecret }}, key: secret-access-key}}
  {{- end }}
# Measured with `esm run` (Python 3.11, one SQS mapping, ElasticMQ, an HTTP target):
# 63 MiB RSS idle and connected; 65 MiB peak draining 50,000 x 1 KiB messages in batches
# of 10 (one core busy, ~7,500 messages/s); 253-263 MiB with 20 batches of 1000 x 4 KiB
# in flight. Memory grows with the payload in flight (BatchSize x message size x
# MaximumConcurrency), not with the backlog.
resources:
  {{- toYaml $v.resources | nindent 2 }}
# /healthz: the process and its event loop are alive. /readyz: every mapping's source
# is connected and its function answered once (esm exits 3 past startup_timeout).
livenessProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: metrics}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
volumeMounts:
  - {name: config, mountPath: /etc/esm, readOnly: true}
  # The image's working directory, where SQLite checkpoints land (values: persistence).
  - {name: state, mountPath: /var/lib/esm}
  - {name: tmp, mountPath: /tmp}
{{- end -}}
