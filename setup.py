"""keraszoo: a TensorFlow/Keras model zoo for missing-data imputation, with serving."""
from setuptools import find_packages, setup

setup(
    name="keraszoo",
    version="0.1.0",
    description="Missing-data imputation models for TensorFlow/Keras, trained with model.fit and served over TF Serving's APIs",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keraszoo", "keraszoo.*", "training", "training.*", "serving", "serving.*"]),
    package_data={"keraszoo.data": ["checksums.json"], "training": ["configs/*.json"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "tensorflow-probability>=0.25,<0.26",
        "tf-keras>=2.21,<2.22",  # TFP's distributions fail to import without it
        "tensorflow-datasets>=4.9.10,<5",
        "importlib_resources",  # tensorflow-datasets 4.9.10 needs it but does not declare it
        "tensorflow-serving-api>=2.21,<2.22",
        "tensorboard>=2.21,<2.22",  # not pulled in by tensorflow 2.21
        "scikit-learn>=1.5",
        "pandas>=2.0",
        "numpy>=1.26",
        "grpcio>=1.60",
        "grpcio-health-checking>=1.60,<2",  # grpc.health.v1 for the server's probes
        "xlrd>=2.0",  # reads the UCI credit .xls when it is downloaded
        "joblib>=1.3",
        "keras-tuner>=1.4.7,<2",  # the tabular imputer's hyper-parameter search (Keras 3 support from 1.4.7)
    ],
    extras_require={"dev": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6.100", "matplotlib>=3.8"]},
    entry_points={"console_scripts": ["keraszoo=keraszoo.cli:main"]},
)
