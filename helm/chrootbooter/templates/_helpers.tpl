{{/* The release's full name: "<release>" when it already contains the chart name. */}}
{{- define "chrootbooter.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object, beside its selector labels (which carry the instance). */}}
{{- define "chrootbooter.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: chrootbooter
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels of objects that are not selected by anything. */}}
{{- define "chrootbooter.labels" -}}
{{ include "chrootbooter.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chrootbooter.operator.selectorLabels" -}}
app.kubernetes.io/name: chrootbooter-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chrootbooter.pxe.selectorLabels" -}}
app.kubernetes.io/name: chrootbooter-pxe-server
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chrootbooter.serviceAccountName" -}}
{{- default (include "chrootbooter.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "chrootbooter.storeClaimName" -}}
{{- default (printf "%s-images" (include "chrootbooter.fullname" .)) .Values.store.existingClaim -}}
{{- end -}}

{{/* The operator's in-cluster URL, through the Service. */}}
{{- define "chrootbooter.serviceUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "chrootbooter.fullname" .) .Release.Namespace (int .Values.service.port) -}}
{{- end -}}

{{/* What iPXE on the machines chains to: pxe.operatorUrl, else publicUrl, else the Service. */}}
{{- define "chrootbooter.pxe.operatorUrl" -}}
{{- coalesce .Values.pxe.operatorUrl .Values.publicUrl (include "chrootbooter.serviceUrl" .) | trimSuffix "/" -}}
{{- end -}}

{{/* The operator's namespaces setting: a comma-separated list, or JOSDK's "all namespaces". */}}
{{- define "chrootbooter.namespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," .Values.watchNamespaces -}}
{{- else -}}
JOSDK_ALL_NAMESPACES
{{- end -}}
{{- end -}}
