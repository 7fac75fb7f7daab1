package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * The dm-verity hash tree the operator computed over a mirrored squashfs image, in the format of
 * {@code veritysetup format}: hash type 1, SHA-256, 4 KiB data and hash blocks, a superblock in the
 * tree's first block (so the tree starts at hash block 1), the image zero-padded to whole blocks.
 * In BootImage {@code status.verity} and in the desired state of a {@code Lazy} image.
 *
 * @param hashTreeUrl where the tree is served, to enrolled machines whose image it is; resolved
 *     like the image's URL
 * @param rootHash the root hash, 64 lower-case hex digits
 * @param salt the salt, lower-case hex
 * @param dataBlocks the 4 KiB blocks the tree covers
 * @param hashTreeSize the tree's size in bytes, superblock included
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public record Verity(
    @JsonPropertyDescription("Where the hash tree is served to the machines that run the image.")
        String hashTreeUrl,
    @JsonPropertyDescription("The dm-verity root hash (SHA-256), 64 lower-case hex digits.")
        String rootHash,
    @JsonPropertyDescription("The salt hashed before every block, lower-case hex.") String salt,
    @JsonPropertyDescription(
            "The 4 KiB data blocks the tree covers: the image, zero-padded to a whole block.")
        Long dataBlocks,
    @JsonPropertyDescription("The size of the hash tree in bytes, its superblock included.")
        Long hashTreeSize) {

  /** The data and hash block size of every tree. */
  public static final int BLOCK_SIZE = 4096;

  /** The hash algorithm of every tree, as a dm-verity table names it. */
  public static final String ALGORITHM = "sha256";
}
