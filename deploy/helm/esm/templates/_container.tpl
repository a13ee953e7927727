{{/* The esm container (the same in every mode): image, port, env, probes, resources, security. */}}
{{- define "esm.container" -}}
{{- $v := .root.Values -}}
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
resources:
  {{- toYaml $v.resources | nindent 2 }}
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
  - {name: state, mountPath: /var/lib/esm}
  - {name: tmp, mountPath: /tmp}
{{- end -}}
