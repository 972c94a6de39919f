{{/* Chart name. */}}
{{- define "heedful.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<name>, unless the release name already contains it. */}}
{{- define "heedful.fullname" -}}
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

{{- define "heedful.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: heedful
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of the gateway pods. */}}
{{- define "heedful.selectorLabels" -}}
app.kubernetes.io/name: {{ include "heedful.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{/* Selector labels of the sidecar-mode app pods. */}}
{{- define "heedful.appSelectorLabels" -}}
app.kubernetes.io/name: {{ .Values.sidecar.app.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "heedful.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "heedful.policiesConfigMap" -}}
{{- default (printf "%s-policies" (include "heedful.fullname" .)) .Values.policies.existingConfigMap }}
{{- end }}

{{- define "heedful.apiKeySecret" -}}
{{- if .Values.upstream.apiKey.existingSecret }}
{{- .Values.upstream.apiKey.existingSecret }}
{{- else if .Values.upstream.apiKey.value }}
{{- printf "%s-upstream" (include "heedful.fullname" .) }}
{{- end }}
{{- end }}

{{/* True ("true") when the in-cluster example Redis is deployed. */}}
{{- define "heedful.redisInCluster" -}}
{{- if and (eq .Values.mode "gateway") .Values.redis.inCluster.enabled (not .Values.redis.url) (not .Values.redis.existingSecret) }}true{{ end }}
{{- end }}

{{- define "heedful.redisConfigured" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret (include "heedful.redisInCluster" .) }}true{{ end }}
{{- end }}

{{/* Replicas that share Redis, for each one's share of a repair budget while Redis is down. */}}
{{- define "heedful.budgetReplicas" -}}
{{- if not (kindIs "invalid" .Values.config.budgetReplicas) }}
{{- .Values.config.budgetReplicas | int }}
{{- else if eq .Values.mode "sidecar" }}
{{- .Values.sidecar.app.replicas | int }}
{{- else if .Values.gateway.autoscaling.enabled }}
{{- .Values.gateway.autoscaling.maxReplicas | int }}
{{- else }}
{{- .Values.gateway.replicas | int }}
{{- end }}
{{- end }}

{{- define "heedful.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "heedful.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The heedful container (both modes). */}}
{{- define "heedful.container" -}}
- name: heedful
  image: {{ include "heedful.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  ports:
    - name: http
      containerPort: 8080
      protocol: TCP
  env:
    - name: HEEDFUL_UPSTREAM
      value: {{ required "upstream.url is required" .Values.upstream.url | quote }}
    {{- with (include "heedful.apiKeySecret" .) }}
    - name: HEEDFUL_UPSTREAM_API_KEY
      valueFrom:
        secretKeyRef:
          name: {{ . }}
          key: {{ $.Values.upstream.apiKey.secretKey }}
    {{- end }}
    - name: HEEDFUL_HOST
      value: "0.0.0.0"
    - name: HEEDFUL_PORT
      value: "8080"
    - name: HEEDFUL_POLICIES
      value: /etc/heedful/policies
    {{- if .Values.redis.existingSecret }}
    - name: HEEDFUL_REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ .Values.redis.existingSecret }}
          key: {{ .Values.redis.secretKey }}
    {{- else if .Values.redis.url }}
    - name: HEEDFUL_REDIS_URL
      value: {{ .Values.redis.url | quote }}
    {{- else if (include "heedful.redisInCluster" .) }}
    - name: HEEDFUL_REDIS_URL
      value: {{ printf "redis://%s-redis:6379/0" (include "heedful.fullname" .) | quote }}
    {{- end }}
    {{- with .Values.config.logLevel }}
    - name: HEEDFUL_LOG_LEVEL
      value: {{ . | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" .Values.upstream.timeoutSeconds) }}
    - name: HEEDFUL_UPSTREAM_TIMEOUT_S
      value: {{ .Values.upstream.timeoutSeconds | toString | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" .Values.config.maxBodyBytes) }}
    - name: HEEDFUL_MAX_BODY_BYTES
      value: {{ .Values.config.maxBodyBytes | int64 | toString | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" .Values.config.auditMaxlen) }}
    - name: HEEDFUL_AUDIT_MAXLEN
      value: {{ .Values.config.auditMaxlen | int64 | toString | quote }}
    {{- end }}
    {{- with .Values.config.modelPath }}
    - name: HEEDFUL_MODEL_PATH
      value: {{ . | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" .Values.config.auditSpoolMaxBytes) }}
    - name: HEEDFUL_AUDIT_SPOOL_MAX_BYTES
      value: {{ .Values.config.auditSpoolMaxBytes | int64 | toString | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" .Values.config.auditSpoolMaxRecords) }}
    - name: HEEDFUL_AUDIT_SPOOL_MAX_RECORDS
      value: {{ .Values.config.auditSpoolMaxRecords | int64 | toString | quote }}
    {{- end }}
    {{- if .Values.config.auditRequired }}
    - name: HEEDFUL_AUDIT_REQUIRED
      value: "true"
    {{- end }}
    {{- if (include "heedful.redisConfigured" .) }}
    - name: HEEDFUL_BUDGET_REPLICAS
      value: {{ include "heedful.budgetReplicas" . | quote }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if and (eq .Values.mode "gateway") (gt (int .Values.gateway.preStopSleepSeconds) 0) }}
  lifecycle:
    preStop:
      exec:
        command: ["sleep", {{ .Values.gateway.preStopSleepSeconds | toString | quote }}]
  {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: {{ .Values.probes.startup.periodSeconds }}
    failureThreshold: {{ .Values.probes.startup.failureThreshold }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    # The whole directory, never subPath: subPath mounts do not see ConfigMap updates (no hot reload).
    - name: heedful-policies
      mountPath: /etc/heedful/policies
      readOnly: true
    - name: heedful-tmp
      mountPath: /tmp
{{- end }}

{{- define "heedful.volumes" -}}
- name: heedful-policies
  configMap:
    name: {{ include "heedful.policiesConfigMap" . }}
- name: heedful-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}
