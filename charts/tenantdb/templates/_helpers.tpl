{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "tenantdb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tenantdb.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tenantdb.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; selector labels are the stable subset. */}}
{{- define "tenantdb.labels" -}}
helm.sh/chart: {{ include "tenantdb.chart" . }}
{{ include "tenantdb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tenantdb
{{- end }}

{{- define "tenantdb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantdb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tenantdb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tenantdb.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tenantdb.secretName" -}}
{{- default (include "tenantdb.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Images ------------------------------------------------------------------------------ */}}

{{- define "tenantdb.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "tenantdb.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "tenantdb.imageTag" .) }}
{{- end }}
{{- end }}

{{- define "tenantdb.emulatorImage" -}}
{{- $repository := default .Values.image.repository .Values.emulator.image.repository }}
{{- $tag := default (printf "%s-emulator" (include "tenantdb.imageTag" .)) .Values.emulator.image.tag }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* Watch scope -------------------------------------------------------------------------
"cluster": no namespaces given, everything through a ClusterRole.
"namespaced": exact names, one Role per namespace.
"patterns": some entry is a kopf glob or negation: reading needs cluster-wide grants.  */}}
{{- define "tenantdb.watchMode" -}}
{{- if not .Values.watchNamespaces }}
{{- "cluster" }}
{{- else }}
{{- $patterns := false }}
{{- range .Values.watchNamespaces }}
{{- if regexMatch "[*?\\[\\]!]" . }}{{ $patterns = true }}{{ end }}
{{- end }}
{{- ternary "patterns" "namespaced" $patterns }}
{{- end }}
{{- end }}

{{/* An environment variable value: numbers without exponent, null as "". */}}
{{- define "tenantdb.envValue" -}}
{{- if kindIs "invalid" . }}
{{- "" | quote }}
{{- else if and (kindIs "float64" .) (eq (floor .) .) }}
{{- int64 . | toString | quote }}
{{- else }}
{{- toString . | quote }}
{{- end }}
{{- end }}

{{/* The Neon API the operator talks to: the in-cluster emulator when enabled. */}}
{{- define "tenantdb.neonApiUrl" -}}
{{- if .Values.emulator.enabled }}
{{- printf "http://%s-neon-emulator.%s.svc:%d%s" (include "tenantdb.fullname" .) .Release.Namespace (int .Values.emulator.port) .Values.emulator.apiPath }}
{{- else }}
{{- .Values.config.neonApiUrl }}
{{- end }}
{{- end }}

{{- define "tenantdb.emulatorPostgresHost" -}}
{{- printf "%s-emulator-postgres.%s.svc" (include "tenantdb.fullname" .) .Release.Namespace }}
{{- end }}

{{/* Shards: a JSON list of {index, base, namespaces, peeringName}. One shard (the default)
is the unsharded operator: the release's full name, every watched namespace, peering.name.
More: "<fullname>-shard-<i>", the i-th, (i+shards)-th ... watched namespace (appending a
namespace moves none), "<peering.name>-shard-<i>". */}}
{{- define "tenantdb.shards" -}}
{{- $fullname := include "tenantdb.fullname" . }}
{{- $count := int .Values.shards }}
{{- $shards := list }}
{{- if eq $count 1 }}
{{- $shards = append $shards (dict "index" 0 "base" $fullname "namespaces" .Values.watchNamespaces "peeringName" .Values.peering.name) }}
{{- else }}
{{- range $index := until $count }}
{{- $namespaces := list }}
{{- range $position, $namespace := $.Values.watchNamespaces }}
{{- if eq (mod $position $count) $index }}{{ $namespaces = append $namespaces $namespace }}{{ end }}
{{- end }}
{{- $shards = append $shards (dict "index" $index "base" (printf "%s-shard-%d" $fullname $index) "namespaces" $namespaces "peeringName" (printf "%s-shard-%d" $.Values.peering.name $index)) }}
{{- end }}
{{- end }}
{{- toJson $shards }}
{{- end }}

{{/* Peers: one Deployment each, as a JSON list of {index, shard, name, priority, namespaces,
peeringName}: every shard's active operator and its standbys. */}}
{{- define "tenantdb.peers" -}}
{{- $peers := list }}
{{- $count := ternary (int .Values.peering.replicas) 1 .Values.peering.enabled }}
{{- range $shard := include "tenantdb.shards" $ | fromJsonArray }}
{{- range $index := until $count }}
{{- $name := ternary $shard.base (printf "%s-standby-%d" $shard.base $index) (eq $index 0) }}
{{- $priority := sub (int $.Values.peering.priority) (mul 10 $index) }}
{{- $peers = append $peers (dict "index" $index "shard" (int $shard.index) "name" $name "priority" $priority "namespaces" $shard.namespaces "peeringName" $shard.peeringName) }}
{{- end }}
{{- end }}
{{- toJson $peers }}
{{- end }}

{{/* Labels telling one shard's operator pods from another's; none when unsharded, so the
unsharded Deployment's selector stays what it always was. */}}
{{- define "tenantdb.shardLabels" -}}
{{- if gt (int .root.Values.shards) 1 }}
tenantdb.io/shard: {{ .shard | quote }}
{{- end }}
{{- end }}
