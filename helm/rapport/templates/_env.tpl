{{/*
The environment of one service's container (see the README's configuration
table). Context: dict root, name, svc, services.
Plain settings first (sorted; services.<name>.env overrides them), then
credentials, always by secretKeyRef, then extraEnv.
*/}}
{{- define "rapport.env" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $name := .name -}}
{{- $svc := .svc -}}
{{- $prefix := upper $name -}}
{{- $plain := dict -}}
{{- $_ := set $plain (printf "%s_ADDR" $prefix) (printf "%s:%d" $values.listenHost (int $svc.ports.grpc)) -}}
{{- $_ := set $plain (printf "%s_METRICS_ADDR" $prefix) (printf "%s:%d" $values.listenHost (int $svc.ports.metrics)) -}}
{{- $_ := set $plain "SHUTDOWN_GRACE" (printf "%ds" (int $svc.shutdown.graceSeconds)) -}}
{{- $_ := set $plain "LOG_FORMAT" $values.telemetry.logFormat -}}
{{- $_ := set $plain "RUST_LOG" $values.telemetry.logLevel -}}
{{- $_ := set $plain "OTEL_TRACES_SAMPLER_ARG" (toString $values.telemetry.otlp.samplingRatio) -}}
{{- with $values.telemetry.otlp.endpoint -}}
{{- $_ := set $plain "OTEL_EXPORTER_OTLP_ENDPOINT" . -}}
{{- end -}}
{{- $_ := set $plain "AUTH_ISSUER" $values.auth.issuer -}}
{{- $_ := set $plain "AUTH_AUDIENCE" $values.auth.audience -}}
{{- $_ := set $plain "AUTH_ROLES_CLAIM" $values.auth.rolesClaim -}}
{{- $_ := set $plain "AUTH_LEEWAY_SECONDS" (toString (int $values.auth.leewaySeconds)) -}}
{{- if $values.auth.jwks.enabled -}}
{{- $_ := set $plain "AUTH_JWKS_FILE" (printf "/etc/rapport/jwks/%s" $values.auth.jwks.key) -}}
{{- end -}}
{{- with $values.auth.jwksUrl -}}
{{- $_ := set $plain "AUTH_JWKS_URL" . -}}
{{- end -}}
{{- if $values.auth.oidcDiscovery -}}
{{- $_ := set $plain "AUTH_OIDC_DISCOVERY" "true" -}}
{{- end -}}
{{- if $values.auth.apiKeys.enabled -}}
{{- $_ := set $plain "API_KEYS_FILE" (printf "/etc/rapport/api-keys/%s" $values.auth.apiKeys.key) -}}
{{- end -}}
{{- if $svc.database -}}
{{- $_ := set $plain "DATABASE_MAX_CONNECTIONS" (toString (int $values.database.maxConnections)) -}}
{{- $_ := set $plain "DATABASE_ACQUIRE_TIMEOUT" $values.database.acquireTimeout -}}
{{- $_ := set $plain "RAPPORT_AUTO_MIGRATE" (ternary "false" "true" $values.migrations.enabled) -}}
{{- with $values.database.tls.sslMode -}}
{{- $_ := set $plain "PGSSLMODE" . -}}
{{- end -}}
{{- if $values.database.tls.caSecret.secretName -}}
{{- $_ := set $plain "PGSSLROOTCERT" (printf "/etc/rapport/tls/database/%s" $values.database.tls.caSecret.key) -}}
{{- end -}}
{{- end -}}
{{- if $svc.redis -}}
{{- if $values.redis.enabled -}}
{{- $_ := set $plain "REDIS_COMMAND_TIMEOUT" $values.redis.commandTimeout -}}
{{- if $values.redis.tls.caSecret.secretName -}}
{{- $_ := set $plain "REDIS_CA_FILE" (printf "/etc/rapport/tls/redis/%s" $values.redis.tls.caSecret.key) -}}
{{- end -}}
{{- else -}}
{{- $_ := set $plain "REDIS_URL" "off" -}}
{{- end -}}
{{- end -}}
{{- if eq $name "gateway" -}}
{{- $_ := set $plain "GATEWAY_DNS_REFRESH" $values.routing.dnsRefresh -}}
{{- $_ := set $plain "GATEWAY_HEALTH_INTERVAL" $values.routing.healthInterval -}}
{{- range $area, $backend := $values.services -}}
{{- if $backend.area -}}
{{- $variable := printf "GATEWAY_BACKEND_%s" (upper $backend.area) -}}
{{- if hasKey $.services $area -}}
{{- $_ := set $plain $variable (include "rapport.backendTarget" (dict "root" $root "name" $area "svc" (get $.services $area))) -}}
{{- else -}}
{{- $_ := set $plain $variable "off" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* Services this one calls directly: <NAME>_<CALLEE>_ADDR, over the callee's ClusterIP Service. */ -}}
{{- range $callee := $svc.calls -}}
{{- if hasKey $.services $callee -}}
{{- $_ := set $plain (printf "%s_%s_ADDR" $prefix (upper $callee)) (printf "http://%s-%s:%d" (include "rapport.fullname" $root) $callee (int (get $.services $callee).ports.grpc)) -}}
{{- end -}}
{{- end -}}
{{- /* Services whose change feeds this one follows: the same address, or `off` when not enabled. */ -}}
{{- range $followed := $svc.follows -}}
{{- if hasKey $.services $followed -}}
{{- $_ := set $plain (printf "%s_%s_ADDR" $prefix (upper $followed)) (printf "http://%s-%s:%d" (include "rapport.fullname" $root) $followed (int (get $.services $followed).ports.grpc)) -}}
{{- else -}}
{{- $_ := set $plain (printf "%s_%s_ADDR" $prefix (upper $followed)) "off" -}}
{{- end -}}
{{- end -}}
{{- $plain = mustMergeOverwrite $plain $svc.env -}}
{{- range $key, $value := $plain }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- if $svc.database }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "rapport.secretName" (dict "root" $root "ref" $values.database.url) }}
      key: {{ $values.database.url.key }}
{{- end }}
{{- if and $svc.redis $values.redis.enabled }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "rapport.secretName" (dict "root" $root "ref" $values.redis.url) }}
      key: {{ $values.redis.url.key }}
{{- end }}
{{- if not (include "rapport.remoteKeys" $root | eq "true") }}
- name: AUTH_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "rapport.secretName" (dict "root" $root "ref" $values.auth.jwtSecret) }}
      key: {{ $values.auth.jwtSecret.key }}
{{- else }}
- name: PAGE_TOKEN_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "rapport.secretName" (dict "root" $root "ref" $values.auth.pageTokenKeys) }}
      key: {{ $values.auth.pageTokenKeys.key }}
      {{- /* A Secret written before this key existed still starts the pods
             (each replica then signs with its own key, as before; the
             service logs it). */}}
      optional: true
{{- end }}
{{- with $svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* "true" when token keys come from a JWKS file or the identity provider (no HS256 secret then). */}}
{{- define "rapport.remoteKeys" -}}
{{- if or .Values.auth.jwks.enabled .Values.auth.jwksUrl .Values.auth.oidcDiscovery -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Volumes for the JWKS and API keys files, the CA certificates of PostgreSQL and Redis, and a writable /tmp. */}}
{{- define "rapport.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.database.tls.caSecret }}
{{- if .secretName }}
- name: database-ca
  secret:
    secretName: {{ .secretName }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- with .Values.redis.tls.caSecret }}
{{- if .secretName }}
- name: redis-ca
  secret:
    secretName: {{ .secretName }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- if .Values.auth.jwks.enabled }}
- name: jwks
  secret:
    secretName: {{ include "rapport.secretName" (dict "root" . "ref" .Values.auth.jwks) }}
    items:
      - key: {{ .Values.auth.jwks.key }}
        path: {{ .Values.auth.jwks.key }}
{{- end }}
{{- if .Values.auth.apiKeys.enabled }}
- name: api-keys
  secret:
    secretName: {{ include "rapport.secretName" (dict "root" . "ref" .Values.auth.apiKeys) }}
    items:
      - key: {{ .Values.auth.apiKeys.key }}
        path: {{ .Values.auth.apiKeys.key }}
{{- end }}
{{- end -}}

{{- define "rapport.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.database.tls.caSecret.secretName }}
- name: database-ca
  mountPath: /etc/rapport/tls/database
  readOnly: true
{{- end }}
{{- if .Values.redis.tls.caSecret.secretName }}
- name: redis-ca
  mountPath: /etc/rapport/tls/redis
  readOnly: true
{{- end }}
{{- if .Values.auth.jwks.enabled }}
- name: jwks
  mountPath: /etc/rapport/jwks
  readOnly: true
{{- end }}
{{- if .Values.auth.apiKeys.enabled }}
- name: api-keys
  mountPath: /etc/rapport/api-keys
  readOnly: true
{{- end }}
{{- end -}}
