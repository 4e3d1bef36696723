{{/*
Shared helpers. Every per-service template ranges over "rapport.services",
so adding a service is a values change.
*/}}

{{/* The prefix of every object's name. */}}
{{- define "rapport.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "rapport.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rapport
{{- end -}}

{{/* Selects every pod of the release. */}}
{{- define "rapport.releaseSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selects one service's pods. Context: dict root, name. */}}
{{- define "rapport.selector" -}}
{{ include "rapport.releaseSelector" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Labels of one service's objects. Context: dict root, name. */}}
{{- define "rapport.componentLabels" -}}
{{ include "rapport.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/*
The enabled services as JSON: name -> serviceDefaults merged with
services.<name> (maps merge, lists and scalars replace).
*/}}
{{- define "rapport.services" -}}
{{- $services := dict -}}
{{- range $name, $values := .Values.services -}}
{{- if $values.enabled -}}
{{- $_ := set $services $name (mustMergeOverwrite (deepCopy $.Values.serviceDefaults) $values) -}}
{{- end -}}
{{- end -}}
{{- $services | toJson -}}
{{- end -}}

{{/* The image reference. */}}
{{- define "rapport.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The name of a Secret reference whose secretName may be empty (the chart's Secret). */}}
{{- define "rapport.secretName" -}}
{{- .ref.secretName | default (include "rapport.fullname" .root) -}}
{{- end -}}

{{/* The ServiceAccount of one service. Context: dict root, name, svc. */}}
{{- define "rapport.serviceAccountName" -}}
{{- if .svc.serviceAccount.create -}}
{{- .svc.serviceAccount.name | default (printf "%s-%s" (include "rapport.fullname" .root) .name) -}}
{{- else -}}
{{- .svc.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Where the gateway finds a routed service: its headless Service, every pod address. */}}
{{- define "rapport.backendTarget" -}}
dns:{{ include "rapport.fullname" .root }}-{{ .name }}-headless:{{ .svc.ports.grpc | int }}
{{- end -}}

{{/* terminationGracePeriodSeconds: the preStop sleep, the drain, and 15 s to close pools and flush spans. */}}
{{- define "rapport.terminationGrace" -}}
{{- add .shutdown.preStopSeconds .shutdown.graceSeconds 15 -}}
{{- end -}}

{{/*
A duration as the services parse it (kit's parse_duration: 500ms, 2s, 1m;
a bare number is seconds), in milliseconds. Context: dict value, name (the
key, for the message).
*/}}
{{- define "rapport.milliseconds" -}}
{{- $raw := toString .value | trim -}}
{{- if not (regexMatch "^[0-9]+\\s*(ms|s|m|h|d)?$" $raw) -}}
{{- fail (printf "%s: %q is not a duration (e.g. 500ms, 2s, 1m)" .name $raw) -}}
{{- end -}}
{{- $number := regexFind "^[0-9]+" $raw -}}
{{- $factor := get (dict "" 1000 "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000) (trimPrefix $number $raw | trim) -}}
{{- mul (int64 $number) $factor -}}
{{- end -}}

{{/*
Refuses a routed service whose preStop sleep ends before the gateway can
have stopped calling the pod: cluster DNS answers without it after dnsTtl,
the gateway resolves again within dnsRefresh, plus one healthInterval of
slack (see `routing` in values.yaml). A GATEWAY_* setting in
services.gateway.env wins over routing.*, here as in the pod.
*/}}
{{- define "rapport.validateShutdown" -}}
{{- $services := include "rapport.services" . | fromJson -}}
{{- if hasKey $services "gateway" -}}
{{- $gatewayEnv := (get $services "gateway").env | default dict -}}
{{- $parts := list -}}
{{- range $variable, $key := dict "GATEWAY_DNS_REFRESH" "dnsRefresh" "GATEWAY_HEALTH_INTERVAL" "healthInterval" -}}
{{- $name := printf "routing.%s" $key -}}
{{- $value := get $.Values.routing $key -}}
{{- if hasKey $gatewayEnv $variable -}}
{{- $name = printf "services.gateway.env.%s" $variable -}}
{{- $value = get $gatewayEnv $variable -}}
{{- end -}}
{{- $parts = append $parts (dict "name" $name "value" $value) -}}
{{- end -}}
{{- $parts = append $parts (dict "name" "routing.dnsTtl" "value" .Values.routing.dnsTtl) -}}
{{- $needed := 0 -}}
{{- $terms := list -}}
{{- range $parts -}}
{{- $needed = add $needed (include "rapport.milliseconds" .) -}}
{{- $terms = append $terms (printf "%s (%s)" .name .value) -}}
{{- end -}}
{{- range $name, $svc := $services -}}
{{- if and $svc.area (ne $name "gateway") (lt (mul (int64 $svc.shutdown.preStopSeconds) 1000) $needed) -}}
{{- fail (printf "services.%s.shutdown.preStopSeconds (%d) is shorter than the gateway takes to stop calling a terminating pod, %s: set preStopSeconds to at least %d (terminationGracePeriodSeconds grows with it), or shorten %s" $name (int $svc.shutdown.preStopSeconds) (join " + " $terms) (div (add $needed 999) 1000) (index $parts 0).name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The pod security context every Rapport pod runs with. */}}
{{- define "rapport.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container security context every Rapport container runs with. */}}
{{- define "rapport.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
Refuses value combinations the schema cannot express, with a message that
says what to set.
*/}}
{{- define "rapport.validate" -}}
{{- $services := include "rapport.services" . | fromJson -}}
{{- $credentials := .Values.credentials -}}
{{- $dev := .Values.dev -}}
{{- if and (or $dev.postgresql.enabled $dev.redis.enabled) (not $credentials.create) -}}
{{- fail "dev.postgresql and dev.redis need credentials.create=true: the chart writes their URLs into its own Secret" -}}
{{- end -}}
{{- $keySources := 0 -}}
{{- range $set := list .Values.auth.jwks.enabled .Values.auth.jwksUrl .Values.auth.oidcDiscovery -}}
{{- if $set }}{{ $keySources = add1 $keySources }}{{ end -}}
{{- end -}}
{{- if gt $keySources 1 -}}
{{- fail "set one of auth.jwks.enabled, auth.jwksUrl and auth.oidcDiscovery: the tokens' keys come from one place" -}}
{{- end -}}
{{- if $credentials.create -}}
{{- $usesDatabase := false -}}
{{- $usesRedis := false -}}
{{- range $name, $svc := $services -}}
{{- if $svc.database }}{{ $usesDatabase = true }}{{ end -}}
{{- if $svc.redis }}{{ $usesRedis = true }}{{ end -}}
{{- end -}}
{{- if and $usesDatabase (not .Values.database.url.secretName) (not $credentials.databaseUrl) (not $dev.postgresql.enabled) -}}
{{- fail "credentials.create=true needs credentials.databaseUrl (postgres://…), or database.url.secretName naming a Secret of yours" -}}
{{- end -}}
{{- if and $usesRedis .Values.redis.enabled (not .Values.redis.url.secretName) (not $credentials.redisUrl) (not $dev.redis.enabled) -}}
{{- fail "credentials.create=true needs credentials.redisUrl (redis://…), redis.url.secretName, or redis.enabled=false" -}}
{{- end -}}
{{- if and (include "rapport.remoteKeys" . | eq "true") (not .Values.auth.pageTokenKeys.secretName) (not $credentials.pageTokenKeys) -}}
{{- fail "credentials.create=true with auth.jwks, auth.jwksUrl or auth.oidcDiscovery needs credentials.pageTokenKeys (comma-separated keys of at least 32 random bytes, shared by every replica) or auth.pageTokenKeys.secretName" -}}
{{- end -}}
{{- if or .Values.auth.jwksUrl .Values.auth.oidcDiscovery -}}
{{- /* Keys from the identity provider: no secret needed. */ -}}
{{- else if .Values.auth.jwks.enabled -}}
{{- if and (not .Values.auth.jwks.secretName) (not $credentials.jwks) -}}
{{- fail "auth.jwks.enabled with credentials.create=true needs credentials.jwks (the JWKS document) or auth.jwks.secretName" -}}
{{- end -}}
{{- else if and (not .Values.auth.jwtSecret.secretName) (not $credentials.jwtSecret) -}}
{{- fail "credentials.create=true needs credentials.jwtSecret (HS256, at least 32 random bytes), auth.jwtSecret.secretName, or auth.jwks.enabled=true" -}}
{{- end -}}
{{- if and .Values.auth.apiKeys.enabled (not .Values.auth.apiKeys.secretName) (not $credentials.apiKeys) -}}
{{- fail "auth.apiKeys.enabled with credentials.create=true needs credentials.apiKeys (the API keys JSON) or auth.apiKeys.secretName" -}}
{{- end -}}
{{- end -}}
{{- range $name, $svc := $services -}}
{{- if and $svc.autoscaling.enabled (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas (%d) is above maxReplicas (%d)" $name (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and $svc.autoscaling.enabled (not $svc.autoscaling.targetCPUUtilizationPercentage) (not $svc.autoscaling.customMetric.enabled) -}}
{{- fail (printf "services.%s.autoscaling needs a target: targetCPUUtilizationPercentage or customMetric.enabled" $name) -}}
{{- end -}}
{{- range $svc.calls -}}
{{- if not (hasKey $services .) -}}
{{- fail (printf "services.%s.calls names %q, which is not an enabled service" $name .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (or .Values.ingress.enabled .Values.grpcRoute.enabled) (not (hasKey $services "gateway")) -}}
{{- fail "ingress and grpcRoute expose the gateway: enable services.gateway" -}}
{{- end -}}
{{- include "rapport.validateShutdown" . -}}
{{- if and .Values.grpcRoute.enabled (not .Values.grpcRoute.parentRefs) -}}
{{- fail "grpcRoute.enabled needs grpcRoute.parentRefs (the Gateway to attach to)" -}}
{{- end -}}
{{- /* Traffic through a LoadBalancer or NodePort comes from outside the cluster: only an ipBlock admits it. */ -}}
{{- if and .Values.networkPolicy.enabled .Values.networkPolicy.gatewayFrom (hasKey $services "gateway") -}}
{{- $type := (get $services "gateway").service.type -}}
{{- $ipBlocks := list -}}
{{- range .Values.networkPolicy.gatewayFrom }}{{ if .ipBlock }}{{ $ipBlocks = append $ipBlocks .ipBlock }}{{ end }}{{ end -}}
{{- if and (ne $type "ClusterIP") (not $ipBlocks) -}}
{{- fail (printf "services.gateway.service.type is %s, but networkPolicy.gatewayFrom has no ipBlock, so the gateway's NetworkPolicy would drop every client of that %s: add an ipBlock peer with the clients' CIDR (and the load balancer's health-check ranges when it probes the pods directly), or leave gatewayFrom empty to admit any address" $type $type) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* One egress rule from networkPolicy.<target>: its ports, to its peers (none listed: any address). */}}
{{- define "rapport.egressRule" -}}
- ports:
    {{- toYaml .ports | nindent 4 }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Labels of the dev databases' objects, outside the release's pod selectors. Context: dict root, name. */}}
{{- define "rapport.devLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .root.Chart.Name }}-dev-{{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: dev-{{ .name }}
{{- end -}}
