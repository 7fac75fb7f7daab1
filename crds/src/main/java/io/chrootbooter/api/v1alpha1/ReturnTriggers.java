package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** What, besides a spec change, returns a running machine to the bootstrap. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ReturnTriggers(
    @JsonPropertyDescription("Ctrl+Alt+F12 on the machine's console keyboard. Default: true.")
        Boolean hotkey,
    @JsonPropertyDescription("A magic string on a serial port.") SerialTrigger serial,
    @JsonPropertyDescription(
            "/.bootstrap-return inside the target: running it asks for a return. Default: true.")
        Boolean helper) {

  /** The effective settings, defaults applied. */
  public static ReturnTriggers withDefaults(ReturnTriggers triggers) {
    ReturnTriggers t = triggers == null ? new ReturnTriggers(null, null, null) : triggers;
    return new ReturnTriggers(
        t.hotkey == null || t.hotkey,
        (t.serial == null ? new SerialTrigger(null, null, null) : t.serial).withDefaults(),
        t.helper == null || t.helper);
  }
}
