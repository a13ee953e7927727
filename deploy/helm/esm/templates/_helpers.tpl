{{- define "esm.name" -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}

{{- define "esm.labels" -}}
app.kubernetes.io/name: esm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: esm-{{ .Chart.Version }}
{{- end -}}

{{- define "esm.selector" -}}
app.kubernetes.io/name: esm
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "esm.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}{{ include "esm.name" . }}{{ else }}{{ default "default" .Values.serviceAccount.name }}{{ end -}}
{{- end -}}

{{/* The units the chart deploys: one per group in mode groups, else one named after the release. */}}
{{- define "esm.units" -}}
{{- $units := list -}}
{{- if eq .Values.mode "groups" -}}
{{- range .Values.groups -}}
{{- $units = append $units (dict "name" (printf "%s-%s" (include "esm.name" $) .name) "group" .name "replicas" (default $.Values.replicas .replicas) "mappings" .mappings) -}}
{{- end -}}
{{- else -}}
{{- $units = append $units (dict "name" (include "esm.name" .) "group" "" "replicas" .Values.replicas "mappings" list) -}}
{{- end -}}
{{- toJson $units -}}
{{- end -}}

{{/* esm's config file for one unit: the mappings of its group (all without groups). */}}
{{- define "esm.config" -}}
{{- $root := .root -}}
{{- $mappings := list -}}
{{- range $root.Values.config.event_source_mappings -}}
{{- if or (not $.unit.mappings) (has (dig "esm" "name" "" .) $.unit.mappings) -}}
{{- $mappings = append $mappings . -}}
{{- end -}}
{{- end -}}
{{- $config := dict "functions" $root.Values.config.functions "event_source_mappings" $mappings "metrics" (dict "listen" "0.0.0.0:9090") "shutdown_timeout" $root.Values.config.shutdown_timeout "startup_timeout" $root.Values.config.startup_timeout -}}
{{- if $root.Values.config.checkpoints -}}{{- $_ := set $config "checkpoints" $root.Values.config.checkpoints -}}{{- end -}}
{{- if $root.Values.api.listen -}}
{{- $api := dict "listen" $root.Values.api.listen -}}
{{- if $root.Values.api.credentialsSecret -}}
{{- $_ := set $api "credentials" (dict "access_key_id" (dict "env" "ESM_API_ACCESS_KEY_ID") "secret_access_key" (dict "env" "ESM_API_SECRET_ACCESS_KEY")) -}}
{{- end -}}
{{- $_ := set $config "api" $api -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* What in one unit's config keeps state in the checkpoint store: its Kinesis and DynamoDB Streams
mappings (positions) and the control API (its mappings). Empty when nothing does. */}}
{{- define "esm.storedState" -}}
{{- $config := include "esm.config" . | fromYaml -}}
{{- $kept := list -}}
{{- range $config.event_source_mappings -}}
{{- $arn := default "" .EventSourceArn -}}
{{- if or (contains ":kinesis:" $arn) (contains ":dynamodb:" $arn) -}}
{{- $kept = append $kept (printf "mapping %s" (dig "esm" "name" $arn .)) -}}
{{- end -}}
{{- end -}}
{{- if $config.api -}}{{- $kept = append $kept "the control API's mappings" -}}{{- end -}}
{{- join ", " $kept -}}
{{- end -}}

{{/* True (non-empty) when the unit keeps its state in SQLite: no checkpoints set, or sqlite. */}}
{{- define "esm.sqlite" -}}
{{- $c := .Values.config.checkpoints -}}
{{- if or (not $c) (hasKey $c "sqlite") -}}true{{- end -}}
{{- end -}}
