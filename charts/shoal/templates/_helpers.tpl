{{/* Name of the chart, or nameOverride. */}}
{{- define "shoal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". At most 63 characters.
*/}}
{{- define "shoal.fullname" -}}
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

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "shoal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "shoal.labels" -}}
helm.sh/chart: {{ include "shoal.chart" . }}
{{ include "shoal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: shoal
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels selecting the operator pods. */}}
{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Name of the operator's ServiceAccount. */}}
{{- define "shoal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shoal.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image. */}}
{{- define "shoal.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* "true" when leader election is on: asked for, or needed by more than one replica. */}}
{{- define "shoal.leaderElection" -}}
{{- if or (gt (int .Values.replicas) 1) .Values.platform.operator.leaderElection }}true{{ end }}
{{- end }}

{{/* Namespace of the leader election lease. */}}
{{- define "shoal.leaderElectionNamespace" -}}
{{- .Values.platform.operator.leaderElectionNamespace | default .Release.Namespace }}
{{- end }}

{{/* Port of a listen address such as ":8080" or "0.0.0.0:8080". */}}
{{- define "shoal.addrPort" -}}
{{- $port := regexFind "[0-9]+$" . }}
{{- if not (regexMatch "^[^:]*:[0-9]+$" .) }}
{{- fail (printf "platform.operator: address %q has no port; want host:port, for example \":8080\"" .) }}
{{- end }}
{{- $port }}
{{- end }}

{{/* Port of the metrics endpoint; empty when metrics are off (metricsAddr "0"). */}}
{{- define "shoal.metricsPort" -}}
{{- $addr := .Values.platform.operator.metricsAddr | default ":8080" | toString }}
{{- if ne $addr "0" }}{{ include "shoal.addrPort" $addr }}{{ end }}
{{- end }}

{{/* Port of /healthz and /readyz. */}}
{{- define "shoal.healthPort" -}}
{{- include "shoal.addrPort" (.Values.platform.operator.healthAddr | default ":8081" | toString) }}
{{- end }}

{{/* Where the backend Secret is mounted; the *File keys of the platform config point here. */}}
{{- define "shoal.secretsDir" -}}/etc/shoal/secrets{{- end }}

{{/*
The complete PlatformConfig document read by `shoal operator --config`: the values'
platform sections, with leader election turned on when needed and empty operator settings
left out so that the operator's defaults apply. Stripe prices belong to the plans, so
platform.billing.prices fails here as the operator would fail at start.
*/}}
{{- define "shoal.platformConfig" -}}
{{- $operator := dict }}
{{- range $key, $value := .Values.platform.operator }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
{{- $_ := set $operator $key $value }}
{{- end }}
{{- end }}
{{- $_ := set $operator "namespace" (.Values.platform.operator.namespace | default .Release.Namespace) }}
{{- if include "shoal.leaderElection" . }}
{{- $_ := set $operator "leaderElection" true }}
{{- $_ := set $operator "leaderElectionNamespace" (include "shoal.leaderElectionNamespace" .) }}
{{- end -}}
apiVersion: config.shoal.dev/v1alpha1
kind: PlatformConfig
{{- $runtime := deepCopy (.Values.platform.runtime | default dict) }}
{{- if and .Values.backendSecret.name (not (hasKey $runtime "credentialsSecret")) }}
{{- /* Dedicated tenants' runtime pods get a copy of the same credentials. */}}
{{- $_ := set $runtime "credentialsSecret" .Values.backendSecret.name }}
{{- end }}
{{- $platform := dict "operator" $operator "plans" .Values.platform.plans "runtime" $runtime }}
{{- range $section := list "kafka" "clickhouse" "lake" "metastore" "billing" "sealing" "query" }}
{{- $_ := set $platform $section (get $.Values.platform $section | default dict) }}
{{- end }}
{{- if hasKey $platform.billing "prices" }}
{{- fail "platform.billing.prices: Stripe prices come from the plan catalog: set platform.plans[].stripePriceID instead" }}
{{- end }}
{{ toYaml $platform }}
{{- end }}

{{/* Selector labels of a shared runtime role (dict "root" . "role" "ingest"). */}}
{{- define "shoal.runtimeSelectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" .root }}-runtime
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{/* Labels of a shared runtime role's objects. */}}
{{- define "shoal.runtimeLabels" -}}
helm.sh/chart: {{ include "shoal.chart" .root }}
{{ include "shoal.runtimeSelectorLabels" . }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: shoal
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}
