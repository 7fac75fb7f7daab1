package io.chrootbooter.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * A test of one BootImage on a set of machines: each is switched to the image, checked, and put
 * back. Results per machine and check in the status, and as JUnit XML from the operator. With
 * {@code spec.promote}, a passed test rolls the image out to more machines, a few at a time, each
 * checked the same way, and stops and rolls back at the first failures.
 */
@Group(BootImage.GROUP)
@Version(BootImage.VERSION)
@ShortNames("bt")
@Plural("boottests")
@AdditionalPrinterColumn(
    name = "Image",
    jsonPath = ".spec.imageRef",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Phase",
    jsonPath = ".status.phase",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Passed",
    jsonPath = ".status.passed",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Failed",
    jsonPath = ".status.failed",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Promoted",
    jsonPath = ".status.promotion.progress",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class BootTest extends CustomResource<BootTestSpec, BootTestStatus> implements Namespaced {}
