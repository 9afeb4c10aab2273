"""What runs beside the services.

The drift exporter, the crash service, symbolication, the demo and the
``healthai-telemetry`` command line.
"""
