{{/* The release's base name, at most 40 characters so that every derived name stays a DNS label. */}}
{{- define "distill-mesh.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "distill-mesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: distill-mesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: distill-mesh
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "controller"). */}}
{{- define "distill-mesh.selectorLabels" -}}
app.kubernetes.io/name: distill-mesh
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* A mesh image: (dict "root" $ "service" "trainer" "gpu" true). */}}
{{- define "distill-mesh.image" -}}
{{- $image := .root.Values.image -}}
{{- with index .root.Values.images .service -}}
{{- . -}}
{{- else -}}
{{- $prefix := ternary (printf "%s/%s" $image.registry $image.repository) $image.repository (ne $image.registry "") -}}
{{- printf "%s/%s:%s%s" $prefix .service $image.tag (ternary $image.gpuSuffix "" (default false .gpu)) -}}
{{- end -}}
{{- end -}}

{{/* Names of the parts. */}}
{{- define "distill-mesh.controller" -}}{{ include "distill-mesh.fullname" . }}-controller{{- end -}}
{{- define "distill-mesh.registry" -}}{{ include "distill-mesh.fullname" . }}-registry{{- end -}}
{{- define "distill-mesh.redis" -}}{{ include "distill-mesh.fullname" . }}-redis{{- end -}}
{{- define "distill-mesh.collector" -}}{{ include "distill-mesh.fullname" . }}-collector{{- end -}}
{{- define "distill-mesh.runs" -}}{{ include "distill-mesh.fullname" . }}-runs{{- end -}}
{{- define "distill-mesh.tokenSecret" -}}{{ default (printf "%s-token" (include "distill-mesh.fullname" .)) .Values.auth.existingSecret }}{{- end -}}
{{- define "distill-mesh.scheme" -}}{{ ternary "https" "http" .Values.tls.enabled }}{{- end -}}

{{/* The Redis connection string the teachers use. */}}
{{- define "distill-mesh.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{ include "distill-mesh.redis" . }}:6379
{{- else -}}
{{ .Values.redis.external.url }}
{{- end -}}
{{- end -}}

{{/* The OTLP endpoint pods export to (empty: none). */}}
{{- define "distill-mesh.otlp" -}}
{{- if .Values.telemetry.otlpEndpoint -}}
{{ .Values.telemetry.otlpEndpoint }}
{{- else if .Values.telemetry.collector.enabled -}}
http://{{ include "distill-mesh.collector" . }}:4317
{{- end -}}
{{- end -}}

{{/* The restricted pod security context (the .NET images' user). */}}
{{- define "distill-mesh.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .user | default 1654 }}
runAsGroup: {{ .user | default 1654 }}
fsGroup: {{ .user | default 1654 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "distill-mesh.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Environment every mesh container shares: auth, TLS, telemetry. */}}
{{- define "distill-mesh.meshEnv" -}}
- name: Mesh__AuthTokenFile
  value: /etc/distill-token/token
- name: Mesh__AuthScope
  value: {{ .Values.auth.scope | quote }}
{{- if .Values.tls.enabled }}
- name: Mesh__TlsCertificate
  value: /etc/distill-tls/tls.crt
- name: Mesh__TlsKey
  value: /etc/distill-tls/tls.key
- name: Mesh__TlsTrust
  value: /etc/distill-tls/ca.crt
- name: Mesh__HealthPort
  value: "7110"
{{- end }}
{{- if .Values.telemetry.prometheus }}
- name: Mesh__MetricsPort
  value: "9464"
{{- end }}
{{- with include "distill-mesh.otlp" . }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "distill-mesh.meshVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: token
  mountPath: /etc/distill-token
  readOnly: true
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/distill-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "distill-mesh.meshVolumes" -}}
- name: tmp
  emptyDir: {}
- name: token
  secret:
    secretName: {{ include "distill-mesh.tokenSecret" . }}
    items:
      - key: token
        path: token
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ required "tls.secretName is required when tls.enabled" .Values.tls.secretName }}
{{- end }}
{{- end -}}

{{/* gRPC probes on the service's port, or on the plaintext health port under TLS: (dict "root" $ "port" 7100). */}}
{{- define "distill-mesh.probes" -}}
{{- $port := ternary 7110 .port .root.Values.tls.enabled -}}
startupProbe:
  grpc: { port: {{ $port }}, service: liveness }
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  grpc: { port: {{ $port }}, service: liveness }
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  grpc: { port: {{ $port }}, service: readiness }
  periodSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* Ports of a mesh container: its gRPC port, the metrics port. */}}
{{- define "distill-mesh.ports" -}}
- name: grpc
  containerPort: {{ .port }}
  protocol: TCP
{{- if .root.Values.telemetry.prometheus }}
- name: metrics
  containerPort: 9464
  protocol: TCP
{{- end }}
{{- end -}}
