package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.DesiredState;
import io.fabric8.generator.annotation.Pattern;

/** The serial-port return trigger. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SerialTrigger(
    @JsonPropertyDescription("Watch the serial port for the magic string. Default: true.")
        Boolean enabled,
    @Pattern(Patterns.TTY)
        @JsonPropertyDescription(
            "The serial device under /dev. Default: the port of the machine's cb.serial= kernel"
                + " argument, else ttyS1.")
        String device,
    @Pattern(Patterns.MAGIC)
        @JsonPropertyDescription(
            "The string that, arriving on the device, returns the machine. Default:"
                + " RETURN_TO_BOOTSTRAP.")
        String magic) {

  public static final String DEFAULT_DEVICE = DesiredState.Serial.DEFAULT_DEVICE;
  public static final String DEFAULT_MAGIC = DesiredState.Serial.DEFAULT_MAGIC;

  /** The effective settings, defaults applied. */
  public SerialTrigger withDefaults() {
    return new SerialTrigger(
        enabled == null || enabled,
        device == null ? DEFAULT_DEVICE : device,
        magic == null ? DEFAULT_MAGIC : magic);
  }
}
