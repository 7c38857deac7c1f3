// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IOracleHub} from "../../src/IOracleHub.sol";

/// @notice A signature as tests build and tamper with it, before packing.
struct Sig {
    uint8 v;
    bytes32 r;
    bytes32 s;
}

/// @notice The hub's packed wire format (IOracleHub): 26 bytes per report, 65 per signature.
library Packing {
    /// @dev feedIndex (2) | roundId (4) | price (16, two's complement) | observedAt (4), per report.
    function pack(IOracleHub.Report[] memory reports) internal pure returns (bytes memory out) {
        for (uint256 i = 0; i < reports.length; ++i) {
            IOracleHub.Report memory r = reports[i];
            out = bytes.concat(out, abi.encodePacked(r.feedIndex, r.roundId, r.price, r.observedAt));
        }
    }

    /// @dev r (32) | s (32) | v (1), per signature.
    function pack(Sig[] memory sigs) internal pure returns (bytes memory out) {
        for (uint256 i = 0; i < sigs.length; ++i) {
            out = bytes.concat(out, abi.encodePacked(sigs[i].r, sigs[i].s, sigs[i].v));
        }
    }
}
