// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

import {AggregatorInterface} from "./AggregatorInterface.sol";
import {AggregatorV3Interface} from "./AggregatorV3Interface.sol";

/// @title AggregatorV2V3Interface
/// @notice Everything a Chainlink price feed (an aggregator or its proxy) answers: the legacy getters
///         and events of AggregatorInterface and the round data of AggregatorV3Interface. It adds
///         nothing of its own, like Chainlink's interface of the same name.
interface AggregatorV2V3Interface is AggregatorInterface, AggregatorV3Interface {}
