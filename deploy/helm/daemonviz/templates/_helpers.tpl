{{/* Names: <release>-daemonviz unless the release name already says daemonviz. */}}
{{- define "daemonviz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "daemonviz.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "daemonviz.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "daemonviz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "daemonviz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "daemonviz.labels" -}}
helm.sh/chart: {{ include "daemonviz.chart" . }}
{{ include "daemonviz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "daemonviz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "daemonviz.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "daemonviz.secretName" -}}
{{- default (include "daemonviz.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "daemonviz.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The environment every daemonviz container gets: the ConfigMap, then the Secret. */}}
{{- define "daemonviz.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "daemonviz.fullname" . }}
  - secretRef:
      name: {{ include "daemonviz.secretName" . }}
{{- end -}}

{{/* The container securityContext and the writable /tmp a read-only root needs. */}}
{{- define "daemonviz.containerSecurity" -}}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{- define "daemonviz.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* In-chart services' URLs (used only when enabled and no existingSecret). */}}
{{- define "daemonviz.databaseUrl" -}}
{{- if .Values.postgresql.enabled -}}
{{- $pg := .Values.postgresql.auth -}}
{{- $pw := required "postgresql.auth.password is required when postgresql.enabled" $pg.password -}}
{{- printf "postgres://%s:%s@%s-postgresql:5432/%s" $pg.username (urlquery $pw) (include "daemonviz.fullname" .) $pg.database -}}
{{- else -}}
{{- .Values.externalDatabase.url -}}
{{- end -}}
{{- end -}}

{{- define "daemonviz.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379/0" (include "daemonviz.fullname" .) -}}
{{- else -}}
{{- .Values.externalRedis.url -}}
{{- end -}}
{{- end -}}
